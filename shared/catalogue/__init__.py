"""The priced catalogue as callers see it: vocabularies, search queries, cursors, records."""
