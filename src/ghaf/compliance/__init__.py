"""Compliance evidence: ISO 27001 Annex A controls mapped to live evidence, and an SBOM."""

from ghaf.compliance.html import render_html
from ghaf.compliance.report import build_report, compliance_report
from ghaf.compliance.sbom import environment_sbom

__all__ = ["build_report", "compliance_report", "environment_sbom", "render_html"]
