"""Data: corpora, the classroom generator, subword tokenizers, the input policy for typed text."""
