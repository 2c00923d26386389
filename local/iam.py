"""IAM, as AWS enforces it on the local stack's services: a function's call is allowed
only if its role's policies allow that action on that resource, conditions included,
and a resource policy (an SNS topic's) is evaluated for the service that would use it.

Each function's containers get credentials of their own (``credentials``), so the local
DynamoDB, EventBridge and @connections API know which role signed a request by its
access key id, as AWS does. The signature itself is not checked: this is about missing
grants, not forged requests.

The evaluation is AWS's documented logic for one account, with no SCPs, permissions
boundaries or session policies: an explicit Deny in any policy wins; otherwise an Allow
in the identity's policies or in the resource's policy allows; otherwise the call is
denied. It covers the policy language's elements (Effect, Action and NotAction,
Resource and NotResource, Principal and NotPrincipal, Condition) with * and ?
wildcards, and every condition operator but the binary one, with ...IfExists and the
ForAnyValue: / ForAllValues: set operators. A key that a request does not carry makes a
condition false (true for a negated operator, a ForAllValues or an ...IfExists one), as
on AWS. Policy variables (``${aws:username}``) are not substituted: a statement with one
stops the start, as the local stack cannot evaluate it.

Written here, not taken from a library: moto's evaluator (moto.iam.access_control)
knows StringEquals only, ignores every other operator and denies when a Deny's condition
does not hold; policyuniverse does not evaluate conditions; LocalStack's IAM enforcement
is in its paid edition.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

ACCOUNT = "000000000000"
PARTITION = "aws"

# A condition value as a request carries it: one string, or several (a multivalued key).
ContextValue = str | list[str]


class PolicyError(Exception):
    """A policy the local stack cannot evaluate (AWS would refuse it, or it uses what
    this evaluator does not know); the message says what and where."""


@dataclass(frozen=True)
class Principal:
    """Who makes a call: an IAM role's session (a function) or an AWS service (CloudWatch
    publishing an alarm). ``name`` is what a denial line names (the function)."""

    arn: str = ""  # the role's ARN, for an IAM principal
    service: str = ""  # "cloudwatch.amazonaws.com", for a service principal
    account: str = ACCOUNT
    name: str = ""

    @property
    def session_arn(self) -> str:
        """How AWS names a role's session in an error message."""
        if self.service:
            return self.service
        role = self.arn.rsplit("/", 1)[-1]
        return f"arn:{PARTITION}:sts::{self.account}:assumed-role/{role}/{self.name}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # why a call was denied, in AWS's words: "no identity-based policy allows the
    # dynamodb:GetItem action", "an explicit deny in a resource-based policy"
    reason: str = ""
    # condition keys that statements asked for and the request did not carry
    missing_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """A resolved policy document's statements, checked once when it is loaded."""

    statements: tuple[dict, ...]
    source: str = ""  # where it came from, for errors

    @classmethod
    def of(cls, document: Mapping, source: str = "", resource: bool = False) -> Policy:
        """resource: a resource's policy, whose every statement names its principal."""
        statements = document.get("Statement", [])
        statements = (statements,) if isinstance(statements, Mapping) else tuple(statements)
        for statement in statements:
            _check_statement(statement, source)
            if resource and ("Principal" in statement) == ("NotPrincipal" in statement):
                raise PolicyError(f"{source}: a resource policy's statement needs Principal or NotPrincipal")
        return cls(statements, source)

    def condition_keys(self) -> set[str]:
        """Every condition key its statements ask for, lower-cased."""
        return {key.lower() for s in self.statements for block in s.get("Condition", {}).values() for key in block}


def evaluate(
    action: str,
    resource: str,
    principal: Principal,
    context: Mapping[str, ContextValue] = {},  # noqa: B006 (read only)
    identity: Iterable[Policy] = (),
    resource_policy: Policy | None = None,
    assume: Iterable[str] = (),
) -> Decision:
    """AWS's decision on one request within one account: explicit deny, then allow, then
    the implicit deny. ``context`` holds the request's condition keys (any case);
    conditions on the keys in ``assume`` are taken as holding (to tell which key denied)."""
    keys = _context(principal, context)
    assumed = {k.lower() for k in assume}
    missing: set[str] = set()
    allowed_by = None
    for policy in identity:
        for statement in policy.statements:
            if _applies(statement, action, resource, keys, missing, assumed):
                if statement["Effect"] == "Deny":
                    return Decision(False, "an explicit deny in an identity-based policy", tuple(sorted(missing)))
                allowed_by = "identity"
    for statement in resource_policy.statements if resource_policy else ():
        named = _principal_named(statement, principal)
        if named and _applies(statement, action, resource, keys, missing, assumed):
            if statement["Effect"] == "Deny":
                return Decision(False, "an explicit deny in a resource-based policy", tuple(sorted(missing)))
            if named == "directly":  # naming the account hands the decision to its identity policies
                allowed_by = allowed_by or "resource"
    if allowed_by:
        return Decision(True)
    if resource_policy is not None and not principal.arn:  # a service: only the resource policy can allow it
        return Decision(False, f"no resource-based policy allows the {action} action", tuple(sorted(missing)))
    return Decision(False, f"no identity-based policy allows the {action} action", tuple(sorted(missing)))


def _context(principal: Principal, context: Mapping[str, ContextValue]) -> dict[str, ContextValue]:
    """The request's keys, lower-cased (condition keys are not case sensitive), with the
    global ones every AWS request carries."""
    now = datetime.now(UTC)
    keys: dict[str, ContextValue] = {
        "aws:currenttime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:epochtime": str(int(now.timestamp())),
        "aws:securetransport": "true",  # boto3 calls AWS over HTTPS
        "aws:principalaccount": principal.account,
    }
    if principal.arn:
        keys.update({"aws:principalarn": principal.arn, "aws:principaltype": "AssumedRole"})
    else:
        keys["aws:principalservicename"] = principal.service
    keys.update({k.lower(): v for k, v in context.items()})
    return keys


# ---- one statement ---------------------------------------------------------------------


def _applies(statement: dict, action: str, resource: str, keys: dict, missing: set, assumed=()) -> bool:
    if "Action" in statement:
        if not any(_glob(p, action, fold=True) for p in _list(statement["Action"])):
            return False
    elif any(_glob(p, action, fold=True) for p in _list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(_glob(p, resource) for p in _list(statement["Resource"])):
            return False
    elif "NotResource" in statement and any(_glob(p, resource) for p in _list(statement["NotResource"])):
        return False
    return _conditions_hold(statement.get("Condition", {}), keys, missing, assumed)


def _principal_named(statement: dict, principal: Principal) -> str | None:
    """How a resource policy's statement names the caller: "directly" (everyone, its
    role or session, its service), "by its account" (the account's root or id, which
    leaves the decision to the account's identity policies), or not at all (None)."""
    if "NotPrincipal" in statement:
        return None if _principal_match(statement["NotPrincipal"], principal) else "directly"
    return _principal_match(statement.get("Principal", {}), principal)


def _principal_match(element, principal: Principal) -> str | None:
    if element == "*":
        return "directly"
    found = None
    for kind, values in element.items():
        for value in _list(values):
            if kind == "Service" and principal.service and value == principal.service:
                return "directly"
            if kind != "AWS":
                continue
            if value == "*":
                return "directly"
            if principal.arn and value in (principal.arn, principal.session_arn):
                return "directly"
            if principal.arn and value in (principal.account, f"arn:{PARTITION}:iam::{principal.account}:root"):
                found = "by its account"
    return found


def _conditions_hold(conditions: Mapping, keys: dict, missing: set, assumed=()) -> bool:
    """Every operator's every key holds (AND); one key's several values: any (OR)."""
    for operator, block in conditions.items():
        for key, wanted in block.items():
            if key.lower() in assumed:
                continue
            if not _condition(operator, key.lower(), [_text(w) for w in _list(wanted)], keys, missing):
                return False
    return True


def _condition(operator: str, key: str, wanted: list[str], keys: dict, missing: set) -> bool:
    quantifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    found = keys.get(key)
    if base == "Null":
        return (found is None) == (wanted[0].lower() == "true")
    if found is None:
        missing.add(key)
        return if_exists or quantifier == "ForAllValues" or (not quantifier and _negated(base))
    values = found if isinstance(found, list) else [found]
    test, negated = _OPERATORS[base.replace("Not", "", 1) if _negated(base) else base], _negated(base)

    def one(value: str) -> bool:
        hit = any(test(value, w) for w in wanted)
        return not hit if negated else hit

    if quantifier == "ForAllValues":
        return all(one(v) for v in values)
    if negated and not quantifier:  # a negated operator on several values: none may match
        return all(one(v) for v in values)
    return any(one(v) for v in values)


def _negated(base: str) -> bool:
    return base in ("StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NumericNotEquals") or base in (
        "DateNotEquals",
        "NotIpAddress",
        "ArnNotEquals",
        "ArnNotLike",
    )


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> datetime | None:
    try:
        if re.fullmatch(r"\d+", text):
            return datetime.fromtimestamp(int(text), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _compare(parse, relation):
    def test(value: str, wanted: str) -> bool:
        a, b = parse(value), parse(wanted)
        return a is not None and b is not None and relation(a, b)

    return test


def _ip(value: str, wanted: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(wanted, strict=False)
    except ValueError:
        return False


def _arn(value: str, wanted: str) -> bool:
    """ArnLike: the six parts of an ARN compared one by one, each with * and ?."""
    got, pattern = value.split(":", 5), wanted.split(":", 5)
    return len(got) == len(pattern) == 6 and all(_glob(p, g) for p, g in zip(pattern, got, strict=True))


_OPERATORS = {
    "StringEquals": lambda v, w: v == w,
    "StringEqualsIgnoreCase": lambda v, w: v.casefold() == w.casefold(),
    "StringLike": lambda v, w: _glob(w, v),
    "NumericEquals": _compare(_number, lambda a, b: a == b),
    "NumericLessThan": _compare(_number, lambda a, b: a < b),
    "NumericLessThanEquals": _compare(_number, lambda a, b: a <= b),
    "NumericGreaterThan": _compare(_number, lambda a, b: a > b),
    "NumericGreaterThanEquals": _compare(_number, lambda a, b: a >= b),
    "DateEquals": _compare(_date, lambda a, b: a == b),
    "DateLessThan": _compare(_date, lambda a, b: a < b),
    "DateLessThanEquals": _compare(_date, lambda a, b: a <= b),
    "DateGreaterThan": _compare(_date, lambda a, b: a > b),
    "DateGreaterThanEquals": _compare(_date, lambda a, b: a >= b),
    "Bool": lambda v, w: v.lower() == w.lower(),
    "IpAddress": _ip,
    "ArnEquals": _arn,
    "ArnLike": _arn,
}


@lru_cache(maxsize=4096)
def _pattern(pattern: str, fold: bool) -> re.Pattern:
    # * is any run of characters, ? any one; nothing else is special
    return re.compile(fnmatch.translate(pattern.replace("[", "[[]")), re.IGNORECASE if fold else 0)


def _glob(pattern: str, value: str, fold: bool = False) -> bool:
    return _pattern(pattern, fold).match(value) is not None


def _list(value) -> list:
    return value if isinstance(value, list) else [value]


def _text(value) -> str:
    """A policy value as IAM compares it: JSON true is "true"."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


# ---- checking a policy when it is loaded -----------------------------------------------


def _check_statement(statement, source: str) -> None:
    where = f"{source}: " if source else ""
    if not isinstance(statement, Mapping):
        raise PolicyError(f"{where}a statement must be an object")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise PolicyError(f"{where}Effect must be Allow or Deny, not {statement.get('Effect')!r}")
    if ("Action" in statement) == ("NotAction" in statement):
        raise PolicyError(f"{where}a statement needs Action or NotAction (one of them)")
    if "Resource" in statement and "NotResource" in statement:
        raise PolicyError(f"{where}a statement has Resource or NotResource, not both")
    if "${" in repr(statement):
        raise PolicyError(f"{where}the local stack does not substitute policy variables: {statement!r}")
    for operator in statement.get("Condition", {}):
        base = operator.rpartition(":")[2].removesuffix("IfExists")
        known = operator == "Null" or (base.replace("Not", "", 1) if _negated(base) else base) in _OPERATORS
        if not known or operator.rpartition(":")[0] not in ("", "ForAnyValue", "ForAllValues"):
            raise PolicyError(f"{where}the local stack does not know the condition operator {operator!r}")


# ---- the roles of a template's functions -------------------------------------------------


# The condition keys the local services put in a function's request (besides those of
# _context): a statement that asks for another is evaluated as if the key were absent,
# which AWS would not do, so the stack says so at its start (Role.unsent_keys).
SENT_KEYS = frozenset({"aws:requestedregion", "events:source", "events:detail-type"})


@dataclass
class Role:
    principal: Principal
    policies: list[Policy] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)  # what could not be resolved locally

    def unsent_keys(self) -> set[str]:
        """Condition keys its statements ask for that no local service sends."""
        sent = SENT_KEYS | set(_context(self.principal, {}))
        return {key for policy in self.policies for key in policy.condition_keys()} - sent


def access_key(function_id: str) -> str:
    """The access key id a function's containers sign with, as a Lambda's role session
    does; the local services know the function, and so its role, by it."""
    return f"LOCAL{function_id}"


def roles(template: dict, refs: dict, attributes: dict, resolve) -> dict[str, Role]:
    """Function logical id -> its role, with every policy attached to it in the template
    (AWS::IAM::Policy resources and the role's own Policies), their references resolved
    with ``resolve(value, refs, attributes)``. A value that cannot be resolved here is
    kept as text that matches no request, and noted in the role's ``unresolved``."""
    resources = template.get("Resources", {})
    found: dict[str, Role] = {}
    for function_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        role_ref = resource["Properties"].get("Role")
        role_id = role_ref.get("Fn::GetAtt", [None])[0] if isinstance(role_ref, dict) else None
        role = resources.get(role_id) if role_id else None
        if role is None or role.get("Type") != "AWS::IAM::Role":
            raise PolicyError(f"function {function_id}: its role is not an AWS::IAM::Role of this template")
        role_name = role["Properties"].get("RoleName") or role_id
        principal = Principal(arn=f"arn:{PARTITION}:iam::{ACCOUNT}:role/{role_name}", name=function_id)
        found[function_id] = Role(principal)
        documents = [
            (p["PolicyDocument"], f"{role_id} {p.get('PolicyName', '')}")
            for p in role["Properties"].get("Policies", [])
        ]
        for policy_id, policy in resources.items():
            if policy.get("Type") == "AWS::IAM::Policy" and {"Ref": role_id} in policy["Properties"].get("Roles", []):
                documents.append((policy["Properties"]["PolicyDocument"], policy_id))
        for managed in role["Properties"].get("ManagedPolicyArns", []):
            found[function_id].unresolved.append(f"managed policy {managed} (its statements are unknown here)")
        for document, source in documents:
            resolved = _resolved(document, refs, attributes, resolve, found[function_id].unresolved)
            found[function_id].policies.append(Policy.of(resolved, source))
    return found


def _resolved(value, refs, attributes, resolve, unresolved: list[str]):
    """The document with each intrinsic function replaced by its local value."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("Ref", "Fn::GetAtt", "Fn::Join", "Fn::Sub", "Fn::Select"):
            try:
                return resolve(value, refs, attributes)
            except Exception as exc:  # TemplateError: matches nothing, said at start
                unresolved.append(str(exc))
                return f"(unresolved: {exc})"
        return {k: _resolved(v, refs, attributes, resolve, unresolved) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, refs, attributes, resolve, unresolved) for v in value]
    return value


def access_key_of(headers: Mapping[str, str], query: Mapping[str, str] = {}) -> str | None:  # noqa: B006
    """The access key id a SigV4 request was signed with (header or presigned query)."""
    credential = query.get("X-Amz-Credential", "")
    authorization = headers.get("Authorization") or headers.get("authorization") or ""
    if authorization.startswith("AWS4-HMAC-SHA256 ") and "Credential=" in authorization:
        credential = authorization.split("Credential=", 1)[1]
    return credential.split("/", 1)[0].strip() or None


class Authorizer:
    """Who signed a request, and whether their role allows it. Every denial is printed
    on one line: the function, the action, the resource and why."""

    def __init__(self, function_roles: dict[str, Role], region: str, log=print):
        self.region, self.log = region, log
        self.by_key = {access_key(function_id): role for function_id, role in function_roles.items()}
        self.denied = 0
        # A role whose statements do not look at the clock decides a call with no condition
        # keys of its own (DynamoDB's, @connections') the same way each time: remembered.
        self._timeless = {
            id(role)
            for role in function_roles.values()
            if not re.search(r"aws:(currenttime|epochtime)", repr(role.policies), re.IGNORECASE)
        }
        self._decided: dict[tuple[int, str, str], Decision] = {}

    def caller(self, headers: Mapping[str, str], query: Mapping[str, str] = {}) -> Role | None:  # noqa: B006
        key = access_key_of(headers, query)
        return self.by_key.get(key) if key else None

    def check(
        self,
        role: Role,
        action: str,
        resource: str,
        context: Mapping[str, ContextValue] = {},  # noqa: B006
        resource_policy: Policy | None = None,
    ) -> Decision:
        """The decision for this call; a denial is printed."""
        remembered = not context and resource_policy is None and id(role) in self._timeless
        decision = self._decided.get((id(role), action, resource)) if remembered else None
        if decision is None:
            context = {"aws:RequestedRegion": self.region, **context}
            decision = evaluate(action, resource, role.principal, context, role.policies, resource_policy)
            if remembered:
                if len(self._decided) >= 10_000:  # @connections ARNs name each connection
                    self._decided.clear()
                self._decided[(id(role), action, resource)] = decision
        if not decision.allowed:
            self.denied += 1
            self.log(denial_line(role.principal, action, resource, decision))
        return decision


def denial_line(principal: Principal, action: str, resource: str, decision: Decision) -> str:
    """One line, whatever a caller put in the resource (a table name, a connection id)."""
    who = principal.name or principal.service
    line = f"denied by IAM: {who} may not {action} on {resource}: {decision.reason}"
    if decision.missing_keys:
        line += f" (statements asked for {', '.join(decision.missing_keys)}, which the request did not carry)"
    return one_line(line)


def one_line(text: str) -> str:
    """Text safe to print as one line: every control, format or line-separator character
    (C0, C1, U+2028, U+2029, bidi controls, ...) escaped as \\uXXXX."""
    return "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp") else c
        for c in text
    )


def not_authorized(principal: Principal, action: str, resource: str, decision: Decision) -> str:
    """AWS's AccessDenied message."""
    return (
        f"User: {principal.session_arn} is not authorized to perform: {action} on resource: {resource} "
        f"because {decision.reason}"
    )


# ---- resource policies: what a service may do to the template's resources ------------------

CLOUDWATCH = "cloudwatch.amazonaws.com"


def alarm_denials(template: dict, refs: dict, attributes: dict, resolve, region: str) -> list[str]:
    """One line for each SNS topic whose policy would refuse its alarms' notifications:
    CloudWatch publishes as its service principal, and a topic policy replaces the default
    one (which lets the account's alarms publish), so it must allow CloudWatch itself."""
    resources = template.get("Resources", {})
    policies: dict[str, Policy] = {}
    for policy_id, resource in resources.items():
        if resource.get("Type") != "AWS::SNS::TopicPolicy":
            continue
        document = _resolved(resource["Properties"]["PolicyDocument"], refs, attributes, resolve, [])
        for topic in resource["Properties"].get("Topics", []):
            policies[_resolved(topic, refs, attributes, resolve, [])] = Policy.of(document, policy_id, resource=True)
    alarms_by_topic: dict[str, list[str]] = {}
    for alarm_id, resource in resources.items():
        if resource.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        for action in (
            props.get("AlarmActions", []) + props.get("OKActions", []) + props.get("InsufficientDataActions", [])
        ):
            topic = _resolved(action, refs, attributes, resolve, [])
            if isinstance(topic, str) and topic.startswith("arn:aws:sns:") and topic in policies:
                alarms_by_topic.setdefault(topic, []).append(alarm_id)
    lines = []
    service = Principal(service=CLOUDWATCH)
    for topic, alarms in alarms_by_topic.items():
        context = {
            "aws:SourceAccount": ACCOUNT,
            "aws:SourceOwner": ACCOUNT,  # (what SNS's default topic policy asks for)
            "aws:SourceArn": f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{alarms[0]}",
        }
        decision = evaluate("sns:Publish", topic, service, context, resource_policy=policies[topic])
        if not decision.allowed:
            lines.append(
                denial_line(service, "sns:Publish", topic, decision)
                + f"; {len(alarms)} alarms notify this topic, and none of their notifications would arrive"
            )
    return lines


def uninvokable_routes(
    template: dict, routes: dict[str, str], stage: str, api_id: str, refs: dict, attributes: dict, resolve, region: str
) -> dict[str, str]:
    """Route key -> a denial line, for each route whose function's resource policy (its
    AWS::Lambda::Permission resources) does not let API Gateway invoke it for that route:
    on AWS such a route answers "Internal server error" ($connect: a 500 handshake)."""
    statements: dict[str, list[dict]] = {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Lambda::Permission":
            continue
        props = _resolved(resource["Properties"], refs, attributes, resolve, [])
        function = str(props["FunctionName"])
        arn = (
            function
            if function.startswith("arn:")
            else f"arn:{PARTITION}:lambda:{region}:{ACCOUNT}:function:{function}"
        )
        who = props["Principal"]
        statement = {
            "Effect": "Allow",
            "Principal": {"Service": who} if who.endswith(".amazonaws.com") else {"AWS": who},
            "Action": props["Action"],
            "Resource": arn,
            "Condition": {},
        }
        if "SourceArn" in props:
            statement["Condition"]["ArnLike"] = {"AWS:SourceArn": props["SourceArn"]}
        if "SourceAccount" in props:
            statement["Condition"]["StringEquals"] = {"AWS:SourceAccount": props["SourceAccount"]}
        statements.setdefault(arn, []).append(statement)
    gateway = Principal(service="apigateway.amazonaws.com")
    denied = {}
    for route, function_id in routes.items():
        arn = f"arn:{PARTITION}:lambda:{region}:{ACCOUNT}:function:{function_id}"
        source = f"arn:{PARTITION}:execute-api:{region}:{ACCOUNT}:{api_id}/{stage}/{route}"
        policy = Policy.of({"Statement": statements.get(arn, [])}, f"{function_id}'s permissions", resource=True)
        context = {"aws:SourceArn": source, "aws:SourceAccount": ACCOUNT}
        decision = evaluate("lambda:InvokeFunction", arn, gateway, context, resource_policy=policy)
        if not decision.allowed:
            denied[route] = denial_line(gateway, "lambda:InvokeFunction", arn, decision) + f" (route {route})"
    return denied
