"""Errors a service raises for a caller's mistake; views turn them into 4xx answers with the message."""


class ServiceError(Exception):
    """Base class: `status` is the HTTP status a view should answer with, `code` a stable machine name."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(ServiceError):
    status = 400
    code = "invalid"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class AuthenticationFailed(ServiceError):
    """Credentials came, but name no active user (401)."""

    status = 401
    code = "authentication_failed"


class AccessDenied(ServiceError):
    status = 403
    code = "forbidden"


class AlreadySubmitted(ServiceError):
    status = 409
    code = "already_submitted"


class LeaseExpired(ServiceError):
    status = 409
    code = "lease_expired"


class CampaignClosed(ServiceError):
    status = 409
    code = "campaign_closed"


class BudgetExhausted(ServiceError):
    """The money or GPU cap would be passed; nothing was reserved or started."""

    status = 402
    code = "budget_exhausted"
