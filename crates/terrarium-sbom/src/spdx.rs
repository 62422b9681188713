//! SPDX 2.3 JSON: the image as the described package, every installed package contained in
//! it, each with its purl, sha256 (when known) and declared license.

use serde_json::{Value, json};

use crate::license::license_refs;
use crate::{Ecosystem, Sbom};

/// `SPDXRef-` identifiers allow letters, digits, `.` and `-`.
fn id_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

pub(crate) fn document(sbom: &Sbom) -> Vec<u8> {
    let tool = concat!("Tool: terrarium-", env!("CARGO_PKG_VERSION"));
    let image_id = "SPDXRef-image";
    let mut packages = vec![json!({
        "SPDXID": image_id,
        "name": sbom.name,
        "versionInfo": sbom.digest.to_string(),
        "primaryPackagePurpose": "CONTAINER",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "checksums": [{"algorithm": "SHA256", "checksumValue": sbom.digest.hex()}],
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": format!("pkg:oci/{}@sha256%3A{}", sbom.name, sbom.digest.hex()),
        }],
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id,
    })];
    let mut refs: Vec<String> = Vec::new();
    for (index, package) in sbom.packages.iter().enumerate() {
        let (kind, supplier, purpose) = match &package.ecosystem {
            Ecosystem::Debian { .. } => ("deb", "Organization: Debian", "LIBRARY"),
            Ecosystem::Python => ("pypi", "NOASSERTION", "LIBRARY"),
        };
        let id = format!("SPDXRef-{kind}-{index}-{}", id_part(&package.name));
        let license = package
            .license
            .clone()
            .unwrap_or_else(|| "NOASSERTION".into());
        for reference in license_refs(&license) {
            if !refs.contains(&reference) {
                refs.push(reference);
            }
        }
        let mut value = json!({
            "SPDXID": id,
            "name": package.name,
            "versionInfo": package.version,
            "supplier": supplier,
            "primaryPackagePurpose": purpose,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": license,
            "copyrightText": "NOASSERTION",
            "sourceInfo": format!("installed: {}", package.evidence),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": sbom.purl(package),
            }],
        });
        if let Some(sha256) = package.sha256 {
            value["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": sha256.hex()}]);
        }
        packages.push(value);
        relationships.push(json!({
            "spdxElementId": image_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    let mut document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}@{}", sbom.name, sbom.digest),
        "documentNamespace": format!(
            "https://terrarium.invalid/spdx/{}/{}",
            id_part(&sbom.name),
            sbom.digest.hex()
        ),
        "creationInfo": {"created": sbom.created, "creators": [tool]},
        "packages": packages,
        "relationships": relationships,
    });
    if !refs.is_empty() {
        document["hasExtractedLicensingInfos"] = Value::Array(
            refs.iter()
                .map(|id| {
                    json!({
                        "licenseId": id,
                        "name": id.trim_start_matches("LicenseRef-"),
                        "extractedText": "A license named in a Debian package's copyright file \
                                          (/usr/share/doc/PACKAGE/copyright in the image) that \
                                          has no SPDX identifier; its text is in that file.",
                    })
                })
                .collect(),
        );
    }
    serde_json::to_vec_pretty(&document).unwrap_or_default()
}
