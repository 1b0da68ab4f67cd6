"""Training code for chemzoo models (not part of the wheel)."""
