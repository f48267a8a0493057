"""OIDC claims: the ``email`` claim is what the helpdesk reads to learn which mailbox was connected."""

from oauth2_provider.oauth2_validators import OAuth2Validator


class RigValidator(OAuth2Validator):
    """Adds email and profile claims (filtered by the granted ``email``/``profile`` scopes, as at Google)."""

    def get_additional_claims(self, request):  # type: ignore[no-untyped-def]
        user = request.user
        return {
            "email": user.email,
            "email_verified": True,
            "preferred_username": user.get_username(),
            "name": user.get_full_name() or user.get_username(),
        }
