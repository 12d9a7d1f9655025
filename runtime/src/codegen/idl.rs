//! The `.rpc` sources idlc embeds in generated code, for server reflection.

/// One embedded `.rpc` file: generated modules declare theirs as
/// `IDL_SOURCE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdlSource {
    /// Its name as idlc gave it: relative and `/`-separated (`hello.rpc`,
    /// `common/money.rpc`), never an absolute path. Imports between the
    /// embedded files resolve against these names as idlc resolved them.
    pub name: &'static str,
    /// Its whole text, exactly as idlc read it.
    pub text: &'static str,
}

/// What a generated service adapter says about its IDL
/// ([`ServiceHandler::idl`](crate::server::ServiceHandler::idl)): the file
/// that declares the service and every file it imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceIdl {
    /// The file that declares the service.
    pub file: IdlSource,
    /// Every file it imports, transitively, each once (breadth first, in
    /// import order).
    pub imports: &'static [IdlSource],
}

impl ServiceIdl {
    /// The declaring file first, then its imports.
    pub fn files(&self) -> impl Iterator<Item = &IdlSource> {
        std::iter::once(&self.file).chain(self.imports)
    }
}
