"""Researcher data access: credentials, data use agreements, access requests and API tokens."""

from access.models.agreements import AgreementSignature, DataUseAgreement
from access.models.credentials import CredentialStatus, ResearcherProfile
from access.models.requests import AccessRequest, RequestStatus
from access.models.tokens import ResearcherToken

__all__ = [
    "AccessRequest",
    "AgreementSignature",
    "CredentialStatus",
    "DataUseAgreement",
    "RequestStatus",
    "ResearcherProfile",
    "ResearcherToken",
]
