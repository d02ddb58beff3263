"""One module per messenger; see each module for the lifecycle step it changes."""
