"""Demo content: a small map so a fresh install has something to show."""
