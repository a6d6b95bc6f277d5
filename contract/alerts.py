"""An alert's statuses, as the server stores them and the API, the feed and push payloads name them.
Imports nothing of ours."""

from __future__ import annotations

# new → acknowledged (an officer has seen it) → one outcome.
ALERT_STATUSES = ("new", "acknowledged", "confirmed", "not_match", "invalid")
OPEN_STATUSES = ("new", "acknowledged")
# Each outcome as the alert page offers it (a choice) and as figures count it (a legend).
OUTCOME_CHOICES = {"confirmed": "Confirmed hit", "not_match": "Not a match", "invalid": "Entry no longer valid"}
OUTCOME_LEGEND = {"confirmed": "Confirmed", "not_match": "Not a match", "invalid": "No longer valid", "open": "Open"}
# Where an officer checks a hit before confirming it: a confirmation names one of these.
VERIFIED_WITH = ("NCIC", "State system", "Dispatch")
# An alert's priority, 0–100 (in the push payload): an entry's own, else its list's default. Feeds
# may say it in words.
PRIORITY_WORDS = {"low": 25, "medium": 50, "high": 75}
DEFAULT_PRIORITY = 50
