"""HubSpot connector: extract contacts/deals/activities, write heatsync's fields and tasks back."""

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.settings import HubSpotSettings, OAuthSettings

__all__ = ["HubSpotConnector", "HubSpotSettings", "OAuthSettings"]
