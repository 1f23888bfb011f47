"""Projects: the public widget key, the origins allowed to call intake, routing rules."""
