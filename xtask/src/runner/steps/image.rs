//! Runs an `image` step: the image's user and files, as the runtime gives them.

use anyhow::{Result, bail};

use super::{RunStep, StepContext};
use crate::scenario::steps::Image;

impl RunStep for Image {
    fn run(&self, context: &mut StepContext) -> Result<()> {
        if let Some(expected) = &self.user {
            let actual = context.runtime.image_user(&self.name)?;
            if actual != *expected {
                bail!("expected image {} to run as user `{expected}`, it runs as `{actual}`", self.name);
            }
        }
        if let Some(expected) = &self.files {
            let mut actual = context.runtime.image_files(&self.name)?;
            actual.sort();
            let mut expected = expected.clone();
            expected.sort();
            if actual != expected {
                bail!("expected image {} to hold exactly {expected:?}, it holds {actual:?}", self.name);
            }
        }
        Ok(())
    }
}
