"""Pure parsing of raw input (bytes to records, records to candidates); no Beam, no file system."""
