"""``guardian demo``: a healthy canary then a bad release (the story is pure data)."""
