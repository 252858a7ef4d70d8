//! TEMPORARY stand-in until the command table lands (replaced by the real module).
use crate::resp::{ReqArgs, Value};

#[derive(Debug, Clone, Copy, Default)]
pub struct Flags(u32);
pub struct CommandSpec {
    pub name: Box<str>,
    pub arity: i32,
    pub flags: Flags,
}
pub struct CommandTable {
    specs: Vec<CommandSpec>,
}
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("ERR unknown command")]
    Unknown,
}
#[derive(Debug, thiserror::Error)]
pub enum CommandInfoError {
    #[error("bad")]
    Bad,
}
impl CommandTable {
    pub fn builtin() -> CommandTable {
        CommandTable {
            specs: vec![CommandSpec {
                name: "get".into(),
                arity: 2,
                flags: Flags(0),
            }],
        }
    }
    pub fn from_command_reply(_r: &Value) -> Result<CommandTable, CommandInfoError> {
        Err(CommandInfoError::Bad)
    }
    pub fn len(&self) -> usize {
        self.specs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }
    pub fn resolve<'t>(&'t self, _args: &ReqArgs) -> Result<&'t CommandSpec, CommandError> {
        self.specs.first().ok_or(CommandError::Unknown)
    }
}
impl CommandSpec {
    pub fn key_positions(&self, _args: &ReqArgs, out: &mut Vec<usize>) -> Result<(), CommandError> {
        out.push(1);
        Ok(())
    }
    pub fn is_write(&self) -> bool {
        self.flags.0 != 0
    }
    pub fn is_blocking(&self) -> bool {
        false
    }
}
