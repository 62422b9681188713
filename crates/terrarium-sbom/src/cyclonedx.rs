//! CycloneDX 1.6 JSON: the image as the metadata component, every installed package a
//! library component with its purl, sha256 (when known) and license expression.

use serde_json::json;

use crate::Sbom;

/// A UUID (version 5 layout) from the image digest, so the serial number is reproducible.
fn serial(sbom: &Sbom) -> String {
    let hex = sbom.digest.hex();
    let mut bytes = [0u8; 16];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap_or(0);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub(crate) fn document(sbom: &Sbom) -> Vec<u8> {
    let mut refs = Vec::new();
    let components: Vec<_> = sbom
        .packages
        .iter()
        .map(|package| {
            let purl = sbom.purl(package);
            refs.push(purl.clone());
            let mut value = json!({
                "type": "library",
                "bom-ref": purl,
                "name": package.name,
                "version": package.version,
                "purl": purl,
                "properties": [{"name": "terrarium:evidence", "value": package.evidence}],
            });
            if let Some(sha256) = package.sha256 {
                value["hashes"] = json!([{"alg": "SHA-256", "content": sha256.hex()}]);
            }
            if let Some(license) = &package.license {
                value["licenses"] = json!([{"expression": license}]);
            }
            value
        })
        .collect();
    let document = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial(sbom),
        "version": 1,
        "metadata": {
            "timestamp": sbom.created,
            "tools": {"components": [{
                "type": "application",
                "name": "terrarium",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": sbom.name,
                "version": sbom.digest.to_string(),
                "hashes": [{"alg": "SHA-256", "content": sbom.digest.hex()}],
            },
        },
        "components": components,
        "dependencies": [{"ref": "image", "dependsOn": refs}],
    });
    serde_json::to_vec_pretty(&document).unwrap_or_default()
}
