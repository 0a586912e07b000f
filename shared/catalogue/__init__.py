"""The canonical diamond catalogue: grade vocabularies, mapping raw payloads, storing priced rows."""
