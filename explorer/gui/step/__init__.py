"""Step-through: decode one token at a time; every view here draws the current step's records."""
