"""heatsync's HubSpot property labels and descriptions: the CRM-neutral table in
connectors/labels.py (a property means what the field means in any CRM)."""

from connectors.labels import DEFAULT_LOCALE, DESCRIPTIONS, LABELS, description, label

__all__ = ["DEFAULT_LOCALE", "DESCRIPTIONS", "LABELS", "description", "label"]
