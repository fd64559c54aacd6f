"""Lake Formation governance: admins, registered zone locations and explicit grants.

Locations are registered with a dedicated data-access role (not the service-linked role),
because the zones are encrypted with a customer-managed key the service-linked role cannot use.
New databases and tables get no IAMAllowedPrincipals default, so Lake Formation permissions
are the ones that count.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lakeformation as lf
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct

from infra.compliance import acknowledge_grant_policy
from infra.grants import grant_key, grant_prefix, s3_context


class LakeGovernance(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        admin_role_name: str,
        locations: dict[str, s3.IBucket],
        prefix: str,
        data_key: kms.IKey,
    ) -> None:
        """Registers `prefix` (the dataset's folder, e.g. "ibm_telco_churn/") of each zone bucket in
        `locations`, not the whole bucket, so the data-access role reaches only that folder."""
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self._account = stack.account
        admins = [f"arn:{stack.partition}:iam::{stack.account}:role/{admin_role_name}"]
        synthesizer = stack.synthesizer
        if isinstance(synthesizer, cdk.DefaultStackSynthesizer):
            # The deployment role must stay an admin, or CloudFormation cannot apply the grants below.
            admins.append(cdk.Fn.sub(synthesizer.cloud_formation_execution_role_arn))
        self.settings = lf.CfnDataLakeSettings(
            self,
            "Settings",
            admins=[lf.CfnDataLakeSettings.DataLakePrincipalProperty(data_lake_principal_identifier=a) for a in admins],
            create_database_default_permissions=[],
            create_table_default_permissions=[],
        )

        self.data_access_role = iam.Role(
            self,
            "DataAccessRole",
            assumed_by=iam.ServicePrincipal("lakeformation.amazonaws.com"),
            description="Lake Formation reads and writes registered lake locations on behalf of grantees",
        )
        grant_key(
            self.data_access_role, data_key, via="s3", write=True, context=s3_context(*locations.values())
        )
        self.locations: dict[str, lf.CfnResource] = {}
        self._prefix = prefix
        for name, bucket in sorted(locations.items()):
            grant_prefix(self.data_access_role, bucket, prefix, read=True, write=True)
            location = lf.CfnResource(
                self,
                f"{name}Location",
                resource_arn=self._location_arn(bucket),
                use_service_linked_role=False,
                role_arn=self.data_access_role.role_arn,
            )
            location.node.add_dependency(self.settings)
            self.locations[name] = location
        acknowledge_grant_policy(self.data_access_role)
        self._buckets = locations
        self._location_arns: dict[str, str] = {}

    def register_location(self, name: str, bucket: s3.IBucket, prefix: str) -> None:
        """Register one more folder (`prefix`, e.g. "churn_labels/") of a bucket already in `locations`."""
        if all(bucket is not b for b in self._buckets.values()):
            raise ValueError(f"{name}: register only folders of the buckets the data-access role's key grant covers")
        grant_prefix(self.data_access_role, bucket, prefix, read=True, write=True)
        location = lf.CfnResource(
            self,
            f"{name}Location",
            resource_arn=bucket.arn_for_objects(prefix.rstrip("/")),
            use_service_linked_role=False,
            role_arn=self.data_access_role.role_arn,
        )
        location.node.add_dependency(self.settings)
        self.locations[name] = location
        self._location_arns[name] = bucket.arn_for_objects(prefix.rstrip("/"))

    def grant_data_location(self, grant_id: str, role: iam.IRole, location: str) -> None:
        """Let `role` create tables/partitions that point into a registered location."""
        resource = lf.CfnPrincipalPermissions.ResourceProperty(
            data_location=lf.CfnPrincipalPermissions.DataLocationResourceProperty(
                catalog_id=self._account,
                resource_arn=self._location_arns.get(location) or self._location_arn(self._buckets[location]),
            )
        )
        self._grant(grant_id, role, resource, ["DATA_LOCATION_ACCESS"], self.locations[location])

    def _location_arn(self, bucket: s3.IBucket) -> str:
        return bucket.arn_for_objects(self._prefix.rstrip("/"))

    def grant_table(
        self,
        grant_id: str,
        role: iam.IRole,
        database: str,
        table: cdk.CfnResource,
        table_name: str,
        permissions: list[str],
    ) -> None:
        resource = lf.CfnPrincipalPermissions.ResourceProperty(
            table=lf.CfnPrincipalPermissions.TableResourceProperty(
                catalog_id=self._account, database_name=database, name=table_name
            )
        )
        self._grant(grant_id, role, resource, permissions, table)

    def _grant(
        self,
        grant_id: str,
        role: iam.IRole,
        resource: lf.CfnPrincipalPermissions.ResourceProperty,
        permissions: list[str],
        target: IConstruct,
    ) -> None:
        """One explicit grant, never with grant option, created after its target and the settings."""
        grant = lf.CfnPrincipalPermissions(
            self,
            grant_id,
            principal=lf.CfnPrincipalPermissions.DataLakePrincipalProperty(
                data_lake_principal_identifier=role.role_arn
            ),
            resource=resource,
            permissions=sorted(permissions),
            permissions_with_grant_option=[],
        )
        grant.node.add_dependency(target)
        grant.node.add_dependency(self.settings)
