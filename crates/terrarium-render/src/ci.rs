//! `terrarium init --ci github`: a GitHub Actions workflow that runs what terrarium runs
//! locally: `terrarium lint`, `terrarium test --python all` (JUnit reports kept as an
//! artifact), and on a push to the default branch `terrarium build --push` of each image to the
//! GitHub container registry, with terrarium's download cache (Debian packages, wheels,
//! layers) cached between runs under `terrarium.lock`'s hash.

use std::fmt::Write as _;

use crate::RenderedFile;

/// Where the workflow goes, relative to the project (the repository's root).
pub const GITHUB_WORKFLOW: &str = ".github/workflows/terrarium.yml";

/// One image the workflow builds and pushes: the directory it is built from (relative to the
/// repository root, `.` for a single project) and the name it gets under the repository's
/// package namespace (empty: the repository's own name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiImage {
    /// The project directory.
    pub dir: String,
    /// The image's name under `ghcr.io/OWNER/REPO` (empty for the repository itself).
    pub name: String,
}

/// The workflow for the images of a project (one) or a system (one per service);
/// `install_from` is the git repository terrarium is installed from (`cargo install --git`).
pub fn github_workflow(images: &[CiImage], install_from: &str) -> RenderedFile {
    let mut out = String::new();
    out.push_str(
        "# Written by `terrarium init --ci github`: lint, the tests on every supported Python, then\n\
         # the image built without a Docker daemon and pushed to the GitHub container registry.\n\
         name: terrarium\n\
         \n\
         on:\n  push:\n    branches: [main]\n  pull_request:\n\
         \n\
         permissions:\n  contents: read\n\
         \n\
         env:\n",
    );
    let _ = writeln!(out, "  TERRARIUM_REPOSITORY: {install_from}");
    out.push_str("\njobs:\n");
    let setup = "      - uses: actions/checkout@v4\n\
                 \x20     - name: Cache terrarium and its downloads\n\
                 \x20       uses: actions/cache@v4\n\
                 \x20       with:\n\
                 \x20         path: |\n\
                 \x20           ~/.cargo/bin/terrarium\n\
                 \x20           ~/.cache/terrarium\n\
                 \x20         key: terrarium-${{ runner.os }}-${{ hashFiles('**/terrarium.lock') }}\n\
                 \x20         restore-keys: terrarium-${{ runner.os }}-\n\
                 \x20     - name: Install terrarium\n\
                 \x20       run: command -v terrarium || cargo install --locked --git \"$TERRARIUM_REPOSITORY\" terrarium\n";
    out.push_str("  lint:\n    runs-on: ubuntu-latest\n    steps:\n");
    out.push_str(setup);
    out.push_str("      - run: terrarium lint\n\n");

    out.push_str("  test:\n    runs-on: ubuntu-latest\n    steps:\n");
    out.push_str(setup);
    out.push_str("      - run: mkdir -p reports\n");
    let system = images.len() > 1 || images.iter().any(|i| i.dir != ".");
    if system {
        out.push_str("      - run: terrarium test . --python all --junit reports/junit.xml\n");
    } else {
        out.push_str("      - run: terrarium test --python all --junit reports/junit.xml\n");
    }
    out.push_str(
        "      - uses: actions/upload-artifact@v4\n\
         \x20       if: always()\n\
         \x20       with:\n\
         \x20         name: junit\n\
         \x20         path: reports/\n\n",
    );

    out.push_str(
        "  build:\n\
         \x20   needs: [lint, test]\n\
         \x20   if: github.event_name == 'push'\n\
         \x20   runs-on: ubuntu-latest\n\
         \x20   permissions:\n\
         \x20     contents: read\n\
         \x20     packages: write\n\
         \x20   steps:\n",
    );
    out.push_str(setup);
    out.push_str(
        "      - name: Log in to ghcr.io\n\
         \x20       env:\n\
         \x20         TOKEN: ${{ secrets.GITHUB_TOKEN }}\n\
         \x20       run: echo \"$TOKEN\" | docker login ghcr.io --username \"$GITHUB_ACTOR\" --password-stdin\n",
    );
    for image in images {
        let suffix = if image.name.is_empty() {
            String::new()
        } else {
            format!("/{}", image.name)
        };
        let what = if image.name.is_empty() {
            "the image".to_string()
        } else {
            format!("{}'s image", image.name)
        };
        let _ = write!(
            out,
            "      - name: Build and push {what}\n\
             \x20       run: terrarium build {} --push \"ghcr.io/${{GITHUB_REPOSITORY,,}}{suffix}:$GITHUB_SHA\"\n",
            image.dir
        );
    }
    RenderedFile::new(GITHUB_WORKFLOW, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_build_step_per_image() {
        let file = github_workflow(
            &[
                CiImage {
                    dir: "points".into(),
                    name: "points".into(),
                },
                CiImage {
                    dir: "rewards".into(),
                    name: "rewards".into(),
                },
            ],
            "https://example.invalid/terrarium",
        );
        assert_eq!(file.path, std::path::Path::new(GITHUB_WORKFLOW));
        let text = &file.contents;
        assert!(text.contains("terrarium build points --push \"ghcr.io/${GITHUB_REPOSITORY,,}/points:$GITHUB_SHA\""), "{text}");
        assert!(text.contains("terrarium build rewards --push"), "{text}");
        assert!(text.contains("terrarium test . --python all"), "{text}");
        assert!(text.contains("needs: [lint, test]"), "{text}");
    }
}
