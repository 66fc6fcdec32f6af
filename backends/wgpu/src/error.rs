//! Why a GPU operation failed, by kind: the exported table maps the kind to
//! the ABI's status (a caller's bad input, a device out of memory, anything
//! else the device's), so that rewording a message cannot change a status.

/// A failed GPU operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// The caller's input is not valid (a point off the field, a zero
    /// coset generator, lengths that do not match): `INVALID_ARGUMENT`.
    #[error("{0}")]
    Argument(String),
    /// The device has no memory left for the operation: `OUT_OF_MEMORY`
    /// (the prover then releases its prepared bases and sends them again).
    #[error("{0}")]
    OutOfMemory(String),
    /// The device, its driver or this library failed: `DEVICE`.
    #[error("{0}")]
    Device(String),
}

impl From<String> for GpuError {
    fn from(e: String) -> Self {
        GpuError::Device(e)
    }
}

impl From<&str> for GpuError {
    fn from(e: &str) -> Self {
        GpuError::Device(e.to_string())
    }
}

impl GpuError {
    /// The same kind with `what: ` before the message.
    pub fn context(self, what: &str) -> GpuError {
        match self {
            GpuError::Argument(m) => GpuError::Argument(format!("{what}: {m}")),
            GpuError::OutOfMemory(m) => GpuError::OutOfMemory(format!("{what}: {m}")),
            GpuError::Device(m) => GpuError::Device(format!("{what}: {m}")),
        }
    }
}
