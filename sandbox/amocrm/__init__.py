"""An emulated amoCRM / Kommo account (API v4 over loopback HTTP), seeded from sandbox.portal."""
