"""Who may connect. ``cognito``: a user pool (created here, or an existing one named in
context) whose tokens $connect verifies. ``dev``: no pool; ?userId= is trusted."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aws, Validations
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from .lifecycle import removal_policy


class Identity(Construct):
    """Exposes ``issuer`` and ``client_ids`` (None and empty in dev mode), and ``environment``,
    for the connect function."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        auth: str,
        user_pool_id: str | None,
        user_pool_client_ids: tuple[str, ...],
        user_pool_issuer: str,
        retain_data: bool,
    ) -> None:
        """user_pool_issuer: the pool's issuer configuration, "original" or "updated". Tokens
        name their issuer by it (cognito-idp... or issuer-cognito-idp...), and $connect
        accepts only that one: a created pool has it pinned, an existing one is told."""
        super().__init__(scope, id)
        self.auth = auth
        self.user_pool_id: str | None = None
        self.issuer: str | None = None
        self.client_ids: list[str] = []
        if auth == "dev":
            return
        host = "issuer-cognito-idp" if user_pool_issuer == "updated" else "cognito-idp"
        if user_pool_id:
            region = user_pool_id.split("_", 1)[0]
            self.user_pool_id = user_pool_id
            self.issuer = f"https://{host}.{region}.{Aws.URL_SUFFIX}/{user_pool_id}"
            self.client_ids = list(user_pool_client_ids)
            return
        pool, client = self._create_pool(user_pool_issuer, retain_data)
        self.user_pool_id = pool.user_pool_id
        self.issuer = (
            f"https://{host}.{Aws.REGION}.{Aws.URL_SUFFIX}/{pool.user_pool_id}"
            if user_pool_issuer == "updated"
            else pool.user_pool_provider_url  # the same URL, as the local stack reads it
        )
        self.client_ids = [client.user_pool_client_id]

    def _create_pool(self, user_pool_issuer: str, retain_data: bool) -> tuple[cognito.UserPool, cognito.UserPoolClient]:
        """A pool of the stack's own, admin-created users only, and the app client the CLI
        and clients sign in with."""
        pool = cognito.UserPool(
            self,
            "UserPool",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            password_policy=cognito.PasswordPolicy(
                min_length=12, require_lowercase=True, require_uppercase=True, require_digits=True, require_symbols=True
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=removal_policy(retain_data),
            deletion_protection=retain_data,
        )
        Validations.of(pool).acknowledge(
            Acknowledgment(
                id="AwsSolutions-COG2",
                reason="MFA is not forced: this pool is a starting point for a personal stack, and required MFA "
                "would break the README's CLI sign-in. Bring your own pool (userPoolId) to enforce MFA.",
            ),
            Acknowledgment(
                id="AwsSolutions-COG8",
                reason="The Plus feature plan is billed per monthly active user; a personal or test stack should "
                "not incur it silently. Bring your own pool (userPoolId) on the plan you choose.",
            ),
        )
        client = pool.add_client(
            "AppClient",
            auth_flows=cognito.AuthFlow(user_password=True, user_srp=True),
            generate_secret=False,
            prevent_user_existence_errors=True,
            disable_o_auth=True,  # tokens come from InitiateAuth; no hosted UI, no callback URL
        )
        pool.node.default_child.issuer_configuration = cognito.CfnUserPool.IssuerConfigurationProperty(
            type=user_pool_issuer.upper()
        )
        return pool, client

    @property
    def environment(self) -> dict[str, str]:
        """What $connect needs: the auth mode, and in cognito mode whose tokens to accept."""
        environment = {"AUTH_MODE": self.auth}
        if self.issuer:
            environment["TOKEN_ISSUER"] = self.issuer
            environment["TOKEN_CLIENT_IDS"] = ",".join(self.client_ids)
        return environment
