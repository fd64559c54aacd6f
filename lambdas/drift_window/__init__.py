"""WindowGuard: the drift pipeline's Lambda step that finds one window's capture files and writes their manifest."""
