"""Role checks for views of the tenant area, and tenant-aware URL reversing.

Membership itself is checked by TenantMiddleware; these decorators add the role on top. A member without
the role gets 403 (they know the page exists), an outsider never gets this far (404).

Each decorator marks its wrapper with `required_role` ("member" or "admin"). functools.wraps copies the
attribute through outer decorators such as require_POST, so tests can walk the URL patterns and check
every admin page without a hand-kept list.
"""

from collections.abc import Callable
from functools import lru_cache, wraps

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.urls import get_script_prefix, get_urlconf, reverse

from accounts.models import Membership, Tenant


def member_required(view: Callable) -> Callable:
    """The view runs only inside a tenant the user belongs to."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if getattr(request, "membership", None) is None:
            raise Http404("Not a tenant page.")
        return view(request, *args, **kwargs)

    if getattr(wrapper, "required_role", None) != "admin":  # never downgrade an inner admin_required
        wrapper.required_role = "member"  # type: ignore[attr-defined]
    return wrapper


def admin_required(view: Callable) -> Callable:
    """Owners and admins only; other members get 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        membership: Membership | None = getattr(request, "membership", None)
        if membership is None:
            raise Http404("Not a tenant page.")
        if not membership.is_admin:
            raise PermissionDenied("Only admins of this workspace can open this page.")
        return view(request, *args, **kwargs)

    wrapper.required_role = "admin"  # type: ignore[attr-defined]
    return wrapper


def require_customer_writer(membership: Membership) -> None:
    """Light agents may not send anything to customers."""
    if not membership.can_write_to_customers:
        raise PermissionDenied("Light agents can write internal notes only.")


def tenant_reverse(tenant: Tenant, viewname: str, *args, **kwargs) -> str:
    """reverse() for a URL of the tenant area, with positional or keyword arguments after the slug.

    Remembered per URL configuration and script prefix: a page reverses the same few dozen URLs on every
    request (the navigation alone has twenty), and reverse() is slow next to a dictionary lookup.
    """
    try:
        return _reverse(
            get_urlconf() or settings.ROOT_URLCONF,
            get_script_prefix(),
            viewname,
            tenant.slug,
            args,
            tuple(sorted(kwargs.items())),
        )
    except TypeError:  # an unhashable argument
        return _reverse.__wrapped__(None, None, viewname, tenant.slug, args, tuple(kwargs.items()))


@lru_cache(maxsize=8192)
def _reverse(urlconf, script_prefix, viewname: str, slug: str, args: tuple, kwargs: tuple) -> str:
    if args:
        # reverse() refuses to mix args and kwargs; the slug is the first parameter of every tenant URL.
        return reverse(viewname, args=[slug, *args])
    return reverse(viewname, kwargs={"tenant_slug": slug, **dict(kwargs)})
