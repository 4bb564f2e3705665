"""Read-only admin for data access: every change goes through the audited services and pages."""

from django.contrib import admin

from access.models import (
    AccessRequest,
    AgreementSignature,
    DataUseAgreement,
    ResearcherProfile,
    ResearcherToken,
)
from core.admin import ReadOnlyAdmin


@admin.register(ResearcherProfile)
class ResearcherProfileAdmin(ReadOnlyAdmin):
    list_display = ("full_name", "user", "institution", "status", "applied_at", "decided_at")
    list_filter = ("status",)
    search_fields = ("full_name", "user__email", "institution", "orcid")


@admin.register(DataUseAgreement)
class DataUseAgreementAdmin(ReadOnlyAdmin):
    list_display = ("version", "title", "content_hash", "created_at")


@admin.register(AgreementSignature)
class AgreementSignatureAdmin(ReadOnlyAdmin):
    list_display = ("signer", "version", "content_hash", "signed_at", "ip_address")


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnlyAdmin):
    list_display = ("researcher", "release", "status", "created_at", "expires_at")
    list_filter = ("status",)


@admin.register(ResearcherToken)
class ResearcherTokenAdmin(ReadOnlyAdmin):
    list_display = ("user", "name", "prefix", "created_at", "expires_at", "revoked_at")
    exclude = ("key_hash",)
