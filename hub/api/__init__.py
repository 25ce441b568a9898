"""The hub's REST API: one router per resource under ``hub/api/routes``."""
