#[derive(Debug, thiserror::Error)]
#[error("manifest error")]
pub struct ManifestError;

impl ManifestError {
    pub fn render(&self, _color: bool) -> String {
        self.to_string()
    }
}
