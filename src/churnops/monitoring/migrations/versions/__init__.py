"""One module per schema revision of the prediction store."""
