"""The embeddable "Report a problem" widget: serving its script and the demo host page."""
