from django.contrib import admin

from annotation.models import (
    Assignment,
    Case,
    CaseImage,
    Chain,
    Image,
    ImportRun,
    Report,
    ReviewEvent,
    Step,
    Study,
)


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["uuid", "source", "external_id", "patient_key", "study_date"]
    search_fields = ["external_id", "patient_key"]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["uuid", "kind", "width", "height", "bits_stored", "photometric", "modality"]
    list_filter = ["kind", "photometric"]
    readonly_fields = ["sha256"]


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["uuid", "study"]
    search_fields = ["text"]


class CaseImageInline(admin.TabularInline):
    model = CaseImage
    extra = 0
    raw_id_fields = ["image"]


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["uuid", "task_type", "source", "external_id", "created_at"]
    list_filter = ["task_type", "source"]
    search_fields = ["question", "external_id"]
    inlines = [CaseImageInline]
    raw_id_fields = ["report", "prior_report"]


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    fields = ["position", "text", "original_text", "verdict", "note", "deleted", "version"]
    readonly_fields = ["original_text", "version"]


@admin.register(Chain)
class ChainAdmin(admin.ModelAdmin):
    list_display = ["uuid", "origin", "status", "version", "decided_by", "decided_at"]
    list_filter = ["origin", "status"]
    inlines = [StepInline]
    raw_id_fields = ["case", "derived_from"]
    readonly_fields = ["version"]


@admin.register(ReviewEvent)
class ReviewEventAdmin(admin.ModelAdmin):
    """Append-only: the audit trail is never edited, not even by an admin."""

    list_display = ["created_at", "actor", "action", "chain", "step"]
    list_filter = ["action"]

    def has_change_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False

    def has_delete_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["uuid", "chain", "reader", "status", "assigned_at", "seconds_spent"]
    list_filter = ["status"]
    raw_id_fields = ["chain"]


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = ["created_at", "filename", "source", "imported", "duplicates", "rejected", "warnings"]
