"""Incidents: linked reports, timelines, retrospectives, action items and exports."""
