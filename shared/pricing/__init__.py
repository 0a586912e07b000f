"""Versioned pricing rules: which markup a stone gets, and the rule-set version used."""
