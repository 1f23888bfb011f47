"""What the reports domain tells later steps, without importing them (data flows one way).

Receivers run synchronously, inside the sender's transaction, before it commits: what
they add to the session commits with the change that caused it, or not at all.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# Tagging gave a report its priority and flagged categories. Sender: the Report.
report_routed = _signals.signal("report-routed")

# The reporter answered through their status token. Sender: the Report that handles it
# (the surviving ticket, for a merged one); keyword `before`: its status before.
reporter_answered = _signals.signal("reporter-answered")
