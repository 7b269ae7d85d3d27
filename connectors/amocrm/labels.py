"""heatsync's amoCRM field names and descriptions: the CRM-neutral table in connectors/labels.py.

Keys are the fields' codes in lower case (`heatsync_temperature` for `HEATSYNC_TEMPERATURE`) and
`<kind>.<value>` for select options.
"""

from connectors.labels import DEFAULT_LOCALE, DESCRIPTIONS, LABELS, description, label

__all__ = ["DEFAULT_LOCALE", "DESCRIPTIONS", "LABELS", "description", "label"]
