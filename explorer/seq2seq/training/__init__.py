"""Training: options and progress events, named presets, and the training loop."""
