//! The default model (classes and relationship types), written into an
//! empty database on first use.
//!
//! Every row is inserted with `ON CONFLICT (id) DO NOTHING`, so seeding is
//! idempotent and safe when replicas race; the model generation moves only
//! when something was inserted. A seeded class or type that an admin later
//! changed is left as changed: seeding never overwrites.

use itsm_platform::ApiError;
use itsm_proto::itsm::cmdb::v1 as pb;
use itsm_store::audit::Actor;
use itsm_store::{Db, StoreError};

use crate::model::bump_generation;
use crate::store;
use pb::AttributeType::{Boolean, Date, Enum, Number, String as Text};

/// Seeds the default model when it is missing. Idempotent, safe to race.
pub async fn ensure(db: &Db) -> Result<(), ApiError> {
    let now = itsm_store::now_micros();
    let mut tx = db.begin().await?;
    let mut inserted = false;
    for class in classes(now) {
        inserted |= store::classes::insert_class(&mut tx, &class, 1, now, true).await?;
    }
    for t in relationship_types(now) {
        inserted |= store::relationship_types::insert_type(&mut tx, &t, 1, now, true).await?;
    }
    if inserted {
        bump_generation(&mut tx, now).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    if inserted {
        tracing::info!("default cmdb model seeded");
    }
    Ok(())
}

/// An attribute definition of `key` with a display name, type and (for
/// enums) values.
fn attribute(key: &str, display_name: &str, kind: pb::AttributeType) -> pb::AttributeDefinition {
    pb::AttributeDefinition {
        key: key.into(),
        display_name: display_name.into(),
        r#type: kind as i32,
        ..pb::AttributeDefinition::default()
    }
}

fn enumeration(key: &str, display_name: &str, values: &[&str]) -> pb::AttributeDefinition {
    pb::AttributeDefinition {
        enum_values: values.iter().map(|v| (*v).to_owned()).collect(),
        ..attribute(key, display_name, Enum)
    }
}

fn rule(attributes: &[&str], ignore_case: bool) -> pb::IdentificationRule {
    pb::IdentificationRule {
        attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
        ignore_case,
        match_related_classes: false,
    }
}

fn by_display_name() -> Vec<pb::IdentificationRule> {
    vec![rule(&["display_name"], true)]
}

/// The system classes, parents before children.
pub fn classes(now: i64) -> Vec<pb::CiClass> {
    let class = |id: &str,
                 parent: &str,
                 display_name: &str,
                 description: &str,
                 is_abstract: bool,
                 attributes: Vec<pb::AttributeDefinition>,
                 identification_rules: Vec<pb::IdentificationRule>| {
        let seed = Actor::system("seed").to_proto();
        let time = itsm_store::audit::timestamp(now);
        pb::CiClass {
            name: format!("classes/{id}"),
            display_name: display_name.into(),
            description: description.into(),
            parent: if parent.is_empty() {
                String::new()
            } else {
                format!("classes/{parent}")
            },
            is_abstract,
            attributes,
            identification_rules,
            system: true,
            created_by: Some(seed.clone()),
            create_time: Some(time),
            updated_by: Some(seed),
            update_time: Some(time),
            ..pb::CiClass::default()
        }
    };
    vec![
        class(
            "configuration_item",
            "",
            "Configuration item",
            "The root of every class.",
            true,
            Vec::new(),
            Vec::new(),
        ),
        class(
            "hardware",
            "configuration_item",
            "Hardware",
            "Physical equipment.",
            true,
            vec![
                attribute("serial_number", "Serial number", Text),
                attribute("manufacturer", "Manufacturer", Text),
                attribute("model", "Model", Text),
                attribute("asset_tag", "Asset tag", Text),
                attribute("purchase_date", "Purchase date", Date),
                attribute("warranty_end", "Warranty end", Date),
            ],
            vec![rule(&["serial_number"], true)],
        ),
        class(
            "server",
            "hardware",
            "Server",
            "A physical server.",
            false,
            vec![
                attribute("host_name", "Host name", Text),
                attribute("dns_domain", "DNS domain", Text),
                attribute("ip_address", "IP address", Text),
                attribute("os_version", "OS version", Text),
                attribute("cpu_count", "CPU count", Number),
                attribute("memory_gb", "Memory (GB)", Number),
                attribute("virtualized", "Virtualized", Boolean),
            ],
            vec![
                rule(&["serial_number"], true),
                rule(&["host_name", "dns_domain"], true),
            ],
        ),
        class(
            "linux_server",
            "server",
            "Linux server",
            "A server running Linux.",
            false,
            vec![
                attribute("kernel_version", "Kernel version", Text),
                enumeration(
                    "distribution",
                    "Distribution",
                    &[
                        "rhel", "centos", "rocky", "alma", "debian", "ubuntu", "suse", "other",
                    ],
                ),
            ],
            Vec::new(),
        ),
        class(
            "windows_server",
            "server",
            "Windows server",
            "A server running Windows Server.",
            false,
            vec![enumeration(
                "edition",
                "Edition",
                &["standard", "datacenter", "essentials", "other"],
            )],
            Vec::new(),
        ),
        class(
            "network_device",
            "hardware",
            "Network device",
            "A switch, router, firewall or load balancer.",
            false,
            vec![
                enumeration(
                    "device_type",
                    "Device type",
                    &["switch", "router", "firewall", "load_balancer"],
                ),
                attribute("host_name", "Host name", Text),
                attribute("ip_address", "IP address", Text),
                attribute("port_count", "Port count", Number),
                attribute("firmware_version", "Firmware version", Text),
            ],
            vec![rule(&["serial_number"], true), rule(&["host_name"], true)],
        ),
        class(
            "storage",
            "hardware",
            "Storage",
            "A storage array or appliance.",
            false,
            vec![
                attribute("capacity_tb", "Capacity (TB)", Number),
                enumeration(
                    "storage_type",
                    "Storage type",
                    &["san", "nas", "das", "object"],
                ),
            ],
            Vec::new(),
        ),
        class(
            "virtual_machine",
            "configuration_item",
            "Virtual machine",
            "A virtual machine or cloud instance.",
            false,
            vec![
                attribute("instance_id", "Instance id", Text),
                attribute("host_name", "Host name", Text),
                attribute("dns_domain", "DNS domain", Text),
                attribute("ip_address", "IP address", Text),
                attribute("os_version", "OS version", Text),
                enumeration(
                    "hypervisor",
                    "Hypervisor",
                    &[
                        "vmware", "hyper_v", "kvm", "xen", "aws", "azure", "gcp", "other",
                    ],
                ),
                attribute("cpu_count", "CPU count", Number),
                attribute("memory_gb", "Memory (GB)", Number),
            ],
            vec![
                rule(&["instance_id"], true),
                rule(&["host_name", "dns_domain"], true),
            ],
        ),
        class(
            "application",
            "configuration_item",
            "Application",
            "Installed or hosted software.",
            false,
            vec![
                attribute("version", "Version", Text),
                attribute("vendor", "Vendor", Text),
                attribute("url", "URL", Text),
            ],
            by_display_name(),
        ),
        class(
            "database",
            "application",
            "Database",
            "A database instance.",
            false,
            vec![
                enumeration(
                    "engine",
                    "Engine",
                    &[
                        "postgresql",
                        "mysql",
                        "oracle",
                        "sql_server",
                        "mongodb",
                        "other",
                    ],
                ),
                attribute("port", "Port", Number),
            ],
            by_display_name(),
        ),
        class(
            "business_service",
            "configuration_item",
            "Business service",
            "A service the business consumes; where impact analysis ends.",
            false,
            vec![
                enumeration("tier", "Tier", &["tier_1", "tier_2", "tier_3"]),
                attribute("service_owner", "Service owner", Text),
            ],
            by_display_name(),
        ),
        class(
            "cluster",
            "configuration_item",
            "Cluster",
            "A group of redundant members (has_member relationships).",
            false,
            vec![enumeration(
                "cluster_type",
                "Cluster type",
                &["compute", "database", "storage", "load_balancer", "other"],
            )],
            by_display_name(),
        ),
        class(
            "location",
            "configuration_item",
            "Location",
            "A site, building or room; CIs name theirs in `location`.",
            false,
            vec![
                pb::AttributeDefinition {
                    description: "IANA time zone name, e.g. \"Europe/Paris\".".into(),
                    ..attribute("time_zone", "Time zone", Text)
                },
                attribute("address", "Address", Text),
            ],
            by_display_name(),
        ),
    ]
}

/// The system relationship types.
pub fn relationship_types(now: i64) -> Vec<pb::RelationshipType> {
    use pb::ImpactPropagation::{Both, SourceToTarget, TargetToSource};
    let time = itsm_store::audit::timestamp(now);
    let kind = |id: &str,
                forward: &str,
                reverse: &str,
                description: &str,
                propagation: pb::ImpactPropagation| pb::RelationshipType {
        name: format!("relationshipTypes/{id}"),
        forward_label: forward.into(),
        reverse_label: reverse.into(),
        description: description.into(),
        impact_propagation: propagation as i32,
        system: true,
        create_time: Some(time),
        update_time: Some(time),
        ..pb::RelationshipType::default()
    };
    vec![
        kind(
            "depends_on",
            "depends on",
            "used by",
            "The source needs the target to work.",
            TargetToSource,
        ),
        kind(
            "runs_on",
            "runs on",
            "hosts",
            "The source (software, VM) runs on the target (server, cluster).",
            TargetToSource,
        ),
        pb::RelationshipType {
            symmetric: true,
            ..kind(
                "connects_to",
                "connects to",
                "connects to",
                "A network link; same meaning both ways.",
                Both,
            )
        },
        pb::RelationshipType {
            acyclic: true,
            ..kind(
                "contains",
                "contains",
                "contained in",
                "Physical containment: a strict hierarchy (site, rack, server).",
                SourceToTarget,
            )
        },
        pb::RelationshipType {
            membership: true,
            ..kind(
                "has_member",
                "has member",
                "member of",
                "A group and its members: member failures impact the group \
                 subject to its min_members_up.",
                TargetToSource,
            )
        },
    ]
}
