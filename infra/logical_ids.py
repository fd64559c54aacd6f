"""Logical ids that survive re-composition: grouping constructs that stay out of their children's ids.

CloudFormation knows a resource by its logical id, and CDK derives that id from the construct path
below the stack. Moving a bucket under a new grouping construct would change its id, and the next
deploy would create a new, empty bucket and orphan the old one (a named resource, such as a Glue
security configuration, would fail to deploy at all). A `TransparentGroup` groups constructs for
the reader of the code without entering their logical ids, so a stack can be re-composed without
replacing anything it has deployed. Only stacks derived from `StableIdStack` accept such groups.
"""

from __future__ import annotations

import hashlib
import re
import weakref

import aws_cdk as cdk
import jsii
from constructs import Construct, IConstruct

# CDK's documented id scheme: path components below the stack; "Default" is left out entirely,
# "Resource" only from the human-readable part; an 8-character md5 of the path ends the id.
_HIDDEN = "Default"
_HIDDEN_FROM_HUMANS = "Resource"
_HASH_CHARS = 8
_MAX_HUMAN_CHARS = 240
_MAX_ID_CHARS = 255


def make_logical_id(components: list[str]) -> str:
    """The logical id CDK allocates to an element at this path below its stack."""
    parts = [c for c in components if c != _HIDDEN]
    if not parts:
        raise ValueError("a logical id needs at least one path component")
    if len(parts) == 1:
        alone = _alphanumeric(parts[0])
        if len(alone) <= _MAX_ID_CHARS:
            return alone
    digest = hashlib.md5("/".join(parts).encode(), usedforsecurity=False).hexdigest()[:_HASH_CHARS].upper()
    human: list[str] = []
    for part in parts:
        if not human or not human[-1].endswith(part):
            human.append(part)
    readable = "".join(_alphanumeric(p) for p in human if p != _HIDDEN_FROM_HUMANS)
    return readable[:_MAX_HUMAN_CHARS] + digest


def _alphanumeric(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text)


class StableIdStack(cdk.Stack):
    """A stack whose `TransparentGroup`s do not enter the logical ids of the resources they hold."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self._transparent: set[tuple[str, ...]] = set()
        self._stack_depth = len(self.node.path.split("/"))

    @property
    def has_transparent_groups(self) -> bool:
        return bool(self._transparent)

    def register_transparent(self, group: TransparentGroup) -> None:
        self._transparent.add(tuple(group.node.path.split("/")[self._stack_depth :]))

    def stable_logical_id(self, element_path: str) -> str | None:
        """The id of the element at `element_path` without its transparent groups; None if it has none."""
        below_stack = element_path.split("/")[self._stack_depth :]
        kept = [
            part for depth, part in enumerate(below_stack) if tuple(below_stack[: depth + 1]) not in self._transparent
        ]
        return None if len(kept) == len(below_stack) else make_logical_id(kept)


# A construct's stack never changes: found once per construct (Stack.of is a call into jsii, and the grant
# helpers ask it of the same roles, policies and buckets many times).
_STACKS: weakref.WeakKeyDictionary[IConstruct, cdk.Stack] = weakref.WeakKeyDictionary()


def stack_of(construct: IConstruct) -> cdk.Stack:
    """cdk.Stack.of(construct), remembered."""
    if construct not in _STACKS:
        _STACKS[construct] = cdk.Stack.of(construct)
    return _STACKS[construct]


def resource_of(construct: IConstruct) -> IConstruct:
    """The CloudFormation resource `construct` stands for: an L2's default child, recursively (itself when it has
    none). The walk stops at a CfnResource, which has no default child (each step is two calls into jsii)."""
    resource = construct
    while not isinstance(resource, cdk.CfnResource) and (child := resource.node.default_child) is not None:
        resource = child
    return resource


def logical_id_of(element: cdk.CfnElement) -> str:
    """The logical id `element` will have in its template, also before the synth-time override is applied."""
    return _logical_id_in(stack_of(element), element)


def logical_ids_in(stack: cdk.Stack) -> set[str]:
    """The logical ids of every element now in `stack`: one walk of its tree, and the ids that no transparent
    group changes resolved in one call (each call into jsii is a round trip to Node)."""
    elements = [e for e in stack.node.find_all() if isinstance(e, cdk.CfnElement)]
    stable: list[str | None] = [None] * len(elements)
    if isinstance(stack, StableIdStack) and stack.has_transparent_groups:
        stable = [stack.stable_logical_id(e.node.path) for e in elements]
    plain = [e.logical_id for e, s in zip(elements, stable, strict=True) if s is None]
    resolved = stack.resolve(plain) if plain else []
    return {s for s in stable if s is not None} | {str(r) for r in resolved}


def _logical_id_in(stack: cdk.Stack, element: cdk.CfnElement) -> str:
    if isinstance(stack, StableIdStack):
        stable = stack.stable_logical_id(element.node.path)
        if stable is not None:
            return stable
    return str(stack.resolve(element.logical_id))


@jsii.implements(cdk.IAspect)
class _OverrideIdsInGroup:
    """Visits only a group's subtree at synth, so elements added to it after construction are covered too.

    An aspect instead of overriding Stack.allocateLogicalId: that override is a call from the jsii
    runtime back into Python every time any logical id in the stack resolves (about 10,000 per synth
    of all environments, half the synth time); this visits the groups' few hundred constructs once."""

    def __init__(self, stack: StableIdStack) -> None:
        self._stack = stack

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, cdk.CfnElement):
            logical_id = self._stack.stable_logical_id(node.node.path)
            if logical_id is not None:
                node.override_logical_id(logical_id)


class TransparentGroup(Construct):
    """Groups constructs in code; the resources inside keep the logical ids they had without the group."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        if not isinstance(stack, StableIdStack):
            raise TypeError(f"{self.node.path}: a TransparentGroup must live in a StableIdStack")
        stack.register_transparent(self)
        cdk.Aspects.of(self).add(_OverrideIdsInGroup(stack))
