"""amoCRM / Kommo connector: extract contacts, leads and activities; write fields and tasks."""

from connectors.amocrm.connector import AmoCrmConnector
from connectors.amocrm.settings import ENV_VARIABLES, AmoCrmSettings, settings_from_env

__all__ = ["ENV_VARIABLES", "AmoCrmConnector", "AmoCrmSettings", "settings_from_env"]
