"""amoCRM / Kommo connector: extract contacts, leads and activities; write fields and tasks."""

from connectors.amocrm.connector import AmoCrmConnector
from connectors.amocrm.settings import AmoCrmSettings

__all__ = ["AmoCrmConnector", "AmoCrmSettings"]
