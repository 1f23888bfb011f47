"""Reports: public intake, the reporter's status page, the staff API, tagging and routing."""
