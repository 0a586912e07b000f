"""Versioned pricing rules: which rule prices a stone (rules), what it charges (charge), the same in SQL (sql)."""
