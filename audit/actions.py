"""Audit actions of data access, as an enumeration (older services still write plain strings)."""

from django.db import models


class AccessAction(models.TextChoices):
    PROFILE_SAVE = "profile_save", "Researcher profile saved"
    CREDENTIAL_APPLY = "credential_apply", "Applied for credentials"
    CREDENTIAL_ACCEPT = "credential_accept", "Credentials accepted"
    CREDENTIAL_REJECT = "credential_reject", "Credentials rejected"
    CREDENTIAL_SUSPEND = "credential_suspend", "Credentials suspended"
    AGREEMENT_CREATE = "agreement_create", "Data use agreement version created"
    REQUEST_SUBMIT = "request_submit", "Access request submitted (agreement signed)"
    REQUEST_APPROVE = "request_approve", "Access request approved"
    REQUEST_REJECT = "request_reject", "Access request rejected"
    REQUEST_REVOKE = "request_revoke", "Access grant revoked"
    REQUEST_EXPIRE = "request_expire", "Pending access request expired"
    RELEASE_CUT = "release_cut", "Release cut"
    RELEASE_BUILT = "release_built", "Release built"
    RELEASE_PUBLISH = "release_publish", "Public tier approved"
    RELEASE_VIEW = "release_view", "Restricted release viewed"
    FILE_DOWNLOAD = "file_download", "File downloaded"
    API_READ = "api_read", "Restricted data read through the API"
    TOKEN_ISSUE = "token_issue", "API token issued"
    TOKEN_REVOKE = "token_revoke", "API token revoked"
    AUDIT_EXPORT = "audit_export", "Audit trail exported"
