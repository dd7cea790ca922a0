"""Projects: the units of ownership and RBAC domains."""

from ghaf.projects.service import Project, create_project, get_project, list_projects

__all__ = ["Project", "create_project", "get_project", "list_projects"]
