"""The PySide6 application. Talks to explorer.seq2seq through its public API only."""
