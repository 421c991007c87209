//! `image`: what an image holds and whom it runs as.

use schemars::JsonSchema;
use serde::Deserialize;

use super::StepFormat;

/// The image to inspect and what it should hold.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// The image name.
    pub name: String,
    /// Every regular file and link of the image, without a leading slash, in any order.
    /// Absent or null: not checked.
    pub files: Option<Vec<String>>,
    /// The image's configured user, as its config says it (`docker image inspect`, containerd's image status).
    /// Absent or null: not checked.
    pub user: Option<String>,
}

impl StepFormat for Image {
    fn container_names(&self) -> Vec<&str> {
        Vec::new()
    }

    fn image_names(&self) -> Vec<&str> {
        vec![&self.name]
    }

    fn summary(&self) -> String {
        self.name.clone()
    }
}
