//! The system's MIT Kerberos GSSAPI library (`libgssapi_krb5.so.2`),
//! loaded at run time, and only when a Kerberos login is configured.
//!
//! Why loaded at run time (`libloading`) rather than linked: a binding
//! generated at build time (the `libgssapi` crate runs bindgen) needs
//! libclang and the Kerberos headers on every machine that builds Paddock,
//! including for `cargo run` on a fresh machine, although most deployments
//! never configure Kerberos. The calls used here are a dozen, with the
//! stable C ABI of RFC 2744 (GSSAPI v2 C bindings) plus MIT's
//! `gss_acquire_cred_from` (credential store extension, MIT 1.11+), so the
//! declarations are written here by hand. A server whose configuration asks
//! for Kerberos on a machine without the library refuses to start, naming
//! the library and the package that carries it.
//!
//! Threading: MIT's library is thread-safe for distinct objects. A security
//! context is used by one connection task at a time; the acceptor
//! credential is shared read-only, which MIT allows.

use libloading::Library;
use std::ffi::{c_int, c_void, CString};
use std::ptr;
use std::sync::Arc;

type OmUint32 = u32;
type GssName = *mut c_void;
type GssCtx = *mut c_void;
type GssCred = *mut c_void;

#[repr(C)]
struct Buffer {
    length: usize,
    value: *mut c_void,
}

#[repr(C)]
struct Oid {
    length: OmUint32,
    elements: *const c_void,
}

#[repr(C)]
struct KeyValue {
    key: *const std::ffi::c_char,
    value: *const std::ffi::c_char,
}

#[repr(C)]
struct KeyValueSet {
    count: OmUint32,
    elements: *const KeyValue,
}

const GSS_S_COMPLETE: OmUint32 = 0;
const GSS_S_CONTINUE_NEEDED: OmUint32 = 1;
const GSS_C_INITIATE: c_int = 1;
const GSS_C_ACCEPT: c_int = 2;
const GSS_C_MUTUAL_FLAG: OmUint32 = 2;
const GSS_C_INTEG_FLAG: OmUint32 = 32;
const GSS_C_GSS_CODE: c_int = 1;
const GSS_C_MECH_CODE: c_int = 2;
const GSS_C_INDEFINITE: OmUint32 = 0xffff_ffff;

/// GSS_KRB5_NT_PRINCIPAL_NAME, 1.2.840.113554.1.2.2.1: a Kerberos
/// principal written `primary[/instance]@REALM`.
static KRB5_NT_PRINCIPAL_NAME: [u8; 10] =
    [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01];

fn is_error(major: OmUint32) -> bool {
    major & 0xffff_0000 != 0
}

type ImportName =
    unsafe extern "C" fn(*mut OmUint32, *const Buffer, *const Oid, *mut GssName) -> OmUint32;
type ReleaseName = unsafe extern "C" fn(*mut OmUint32, *mut GssName) -> OmUint32;
type AcquireCredFrom = unsafe extern "C" fn(
    *mut OmUint32,
    GssName,
    OmUint32,
    *const c_void,
    c_int,
    *const KeyValueSet,
    *mut GssCred,
    *mut c_void,
    *mut OmUint32,
) -> OmUint32;
type ReleaseCred = unsafe extern "C" fn(*mut OmUint32, *mut GssCred) -> OmUint32;
type AcceptSecContext = unsafe extern "C" fn(
    *mut OmUint32,
    *mut GssCtx,
    GssCred,
    *const Buffer,
    *const c_void,
    *mut GssName,
    *mut *const Oid,
    *mut Buffer,
    *mut OmUint32,
    *mut OmUint32,
    *mut GssCred,
) -> OmUint32;
type InitSecContext = unsafe extern "C" fn(
    *mut OmUint32,
    GssCred,
    *mut GssCtx,
    GssName,
    *const Oid,
    OmUint32,
    OmUint32,
    *const c_void,
    *const Buffer,
    *mut *const Oid,
    *mut Buffer,
    *mut OmUint32,
    *mut OmUint32,
) -> OmUint32;
type DeleteSecContext = unsafe extern "C" fn(*mut OmUint32, *mut GssCtx, *mut Buffer) -> OmUint32;
type DisplayName =
    unsafe extern "C" fn(*mut OmUint32, GssName, *mut Buffer, *mut *const Oid) -> OmUint32;
type Wrap = unsafe extern "C" fn(
    *mut OmUint32,
    GssCtx,
    c_int,
    OmUint32,
    *const Buffer,
    *mut c_int,
    *mut Buffer,
) -> OmUint32;
type Unwrap = unsafe extern "C" fn(
    *mut OmUint32,
    GssCtx,
    *const Buffer,
    *mut Buffer,
    *mut c_int,
    *mut OmUint32,
) -> OmUint32;
type ReleaseBuffer = unsafe extern "C" fn(*mut OmUint32, *mut Buffer) -> OmUint32;
type DisplayStatus = unsafe extern "C" fn(
    *mut OmUint32,
    OmUint32,
    c_int,
    *const Oid,
    *mut OmUint32,
    *mut Buffer,
) -> OmUint32;

/// The library's entry points (kept alive by `_lib`).
struct Api {
    import_name: ImportName,
    release_name: ReleaseName,
    acquire_cred_from: AcquireCredFrom,
    release_cred: ReleaseCred,
    accept_sec_context: AcceptSecContext,
    init_sec_context: InitSecContext,
    delete_sec_context: DeleteSecContext,
    display_name: DisplayName,
    wrap: Wrap,
    unwrap: Unwrap,
    release_buffer: ReleaseBuffer,
    display_status: DisplayStatus,
    _lib: Library,
}

/// The soname of MIT's GSSAPI library (Debian: `libgssapi-krb5-2`).
pub const LIBRARY: &str = "libgssapi_krb5.so.2";

impl Api {
    fn load() -> Result<Api, String> {
        // SAFETY: loading MIT's GSSAPI library runs only its initialisers,
        // which have no preconditions.
        let lib = unsafe { Library::new(LIBRARY) }.map_err(|e| {
            format!(
                "cannot load {LIBRARY} ({e}); Kerberos needs MIT's GSSAPI library \
                 (Debian/Ubuntu: apt-get install libgssapi-krb5-2)"
            )
        })?;
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the declared type is the function's C prototype
                // in MIT's <gssapi/gssapi.h> / <gssapi/gssapi_ext.h>.
                *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("{LIBRARY} lacks {}: {e}", $name))?
            };
        }
        Ok(Api {
            import_name: sym!("gss_import_name"),
            release_name: sym!("gss_release_name"),
            acquire_cred_from: sym!("gss_acquire_cred_from"),
            release_cred: sym!("gss_release_cred"),
            accept_sec_context: sym!("gss_accept_sec_context"),
            init_sec_context: sym!("gss_init_sec_context"),
            delete_sec_context: sym!("gss_delete_sec_context"),
            display_name: sym!("gss_display_name"),
            wrap: sym!("gss_wrap"),
            unwrap: sym!("gss_unwrap"),
            release_buffer: sym!("gss_release_buffer"),
            display_status: sym!("gss_display_status"),
            _lib: lib,
        })
    }

    /// The library's words for a failed call.
    fn status(&self, major: OmUint32, minor: OmUint32) -> String {
        let mut parts = Vec::new();
        for (code, kind) in [(major, GSS_C_GSS_CODE), (minor, GSS_C_MECH_CODE)] {
            if kind == GSS_C_MECH_CODE && code == 0 {
                continue;
            }
            let mut ctx: OmUint32 = 0;
            // A status message can be several lines; 8 is plenty.
            for _ in 0..8 {
                let mut m: OmUint32 = 0;
                let mut buf = Buffer {
                    length: 0,
                    value: ptr::null_mut(),
                };
                // SAFETY: out-pointers to live locals; the buffer is
                // released below.
                let r = unsafe {
                    (self.display_status)(&mut m, code, kind, ptr::null(), &mut ctx, &mut buf)
                };
                if is_error(r) {
                    break;
                }
                parts.push(String::from_utf8_lossy(&self.take(&mut buf)).into_owned());
                if ctx == 0 {
                    break;
                }
            }
        }
        parts.join(": ")
    }

    /// Copies a library buffer out and releases it.
    fn take(&self, buf: &mut Buffer) -> Vec<u8> {
        let out = if buf.value.is_null() || buf.length == 0 {
            Vec::new()
        } else {
            // SAFETY: the library filled `length` bytes at `value`.
            unsafe { std::slice::from_raw_parts(buf.value as *const u8, buf.length) }.to_vec()
        };
        let mut m = 0;
        // SAFETY: a buffer the library allocated (or an empty one).
        unsafe { (self.release_buffer)(&mut m, buf) };
        out
    }
}

/// A Kerberos principal name (`primary[/instance]@REALM`).
fn import_principal(api: &Api, principal: &str) -> Result<GssName, String> {
    let text = CString::new(principal).map_err(|_| "principal contains a NUL byte".to_string())?;
    let oid = Oid {
        length: KRB5_NT_PRINCIPAL_NAME.len() as OmUint32,
        elements: KRB5_NT_PRINCIPAL_NAME.as_ptr() as *const c_void,
    };
    let mut minor = 0;
    let mut name: GssName = ptr::null_mut();
    let nb = input(text.as_bytes());
    // SAFETY: valid input buffer and OID; `name` is an out-pointer.
    let major = unsafe { (api.import_name)(&mut minor, &nb, &oid, &mut name) };
    if is_error(major) {
        return Err(format!(
            "principal {principal:?}: {}",
            api.status(major, minor)
        ));
    }
    Ok(name)
}

fn input(bytes: &[u8]) -> Buffer {
    Buffer {
        length: bytes.len(),
        value: bytes.as_ptr() as *mut c_void,
    }
}

/// A server's Kerberos credential, taken from a keytab for one principal
/// (the JAAS `Server` section's `keyTab` and `principal`).
pub struct Acceptor {
    api: Api,
    cred: GssCred,
    principal: String,
}

// SAFETY: the credential handle is only read after acquisition; MIT's
// library allows one credential to be used by contexts on many threads.
unsafe impl Send for Acceptor {}
unsafe impl Sync for Acceptor {}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Acceptor({})", self.principal)
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        let mut m = 0;
        // SAFETY: acquired in `new`, released once.
        unsafe { (self.api.release_cred)(&mut m, &mut self.cred) };
    }
}

/// A unique name for each initiator's in-memory ticket cache.
static NEXT_CCACHE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Acceptor {
    /// Loads the library and acquires the acceptor credential of
    /// `principal` from `keytab`. Fails when the library is missing, the
    /// keytab cannot be read or holds no key for the principal.
    pub fn new(keytab: &str, principal: &str) -> Result<Arc<Acceptor>, String> {
        Self::acquire(keytab, principal, false)
    }

    /// The initiating credential of `principal`, with its key from
    /// `keytab`: tickets are got from the KDC as needed, into a ticket
    /// cache in memory (the process's default cache is left alone).
    pub fn initiator(keytab: &str, principal: &str) -> Result<Arc<Acceptor>, String> {
        Self::acquire(keytab, principal, true)
    }

    fn acquire(keytab: &str, principal: &str, initiate: bool) -> Result<Arc<Acceptor>, String> {
        let api = Api::load()?;
        let keytab_c =
            CString::new(keytab).map_err(|_| "keyTab contains a NUL byte".to_string())?;
        let mut name = import_principal(&api, principal)?;
        let ccache = CString::new(format!(
            "MEMORY:paddock-{}-{}",
            std::process::id(),
            NEXT_CCACHE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ))
        .expect("no NUL");
        let elems = if initiate {
            vec![
                KeyValue {
                    key: c"client_keytab".as_ptr(),
                    value: keytab_c.as_ptr(),
                },
                KeyValue {
                    key: c"ccache".as_ptr(),
                    value: ccache.as_ptr(),
                },
            ]
        } else {
            vec![KeyValue {
                key: c"keytab".as_ptr(),
                value: keytab_c.as_ptr(),
            }]
        };
        let store = KeyValueSet {
            count: elems.len() as OmUint32,
            elements: elems.as_ptr(),
        };
        let mut minor = 0;
        let mut cred: GssCred = ptr::null_mut();
        // SAFETY: `name` is a live name; the store points at live C
        // strings; the optional out-arguments are null.
        let major = unsafe {
            (api.acquire_cred_from)(
                &mut minor,
                name,
                GSS_C_INDEFINITE,
                ptr::null(),
                if initiate {
                    GSS_C_INITIATE
                } else {
                    GSS_C_ACCEPT
                },
                &store,
                &mut cred,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let mut m = 0;
        // SAFETY: imported above, released once.
        unsafe { (api.release_name)(&mut m, &mut name) };
        if is_error(major) {
            return Err(format!(
                "no key for {principal} in keytab {keytab}: {}",
                api.status(major, minor)
            ));
        }
        Ok(Arc::new(Acceptor {
            api,
            cred,
            principal: principal.to_string(),
        }))
    }

    /// The service principal this server accepts tickets for.
    pub fn principal(&self) -> &str {
        &self.principal
    }
}

/// One client's security context on the accepting side.
pub struct Context {
    acceptor: Arc<Acceptor>,
    ctx: GssCtx,
}

// SAFETY: a context is used by one task at a time (it is moved, never
// shared); MIT's library does not tie a context to a thread.
unsafe impl Send for Context {}

impl Drop for Context {
    fn drop(&mut self) {
        if !self.ctx.is_null() {
            let mut m = 0;
            // SAFETY: a context the library made, deleted once.
            unsafe {
                (self.acceptor.api.delete_sec_context)(&mut m, &mut self.ctx, ptr::null_mut())
            };
        }
    }
}

/// What one `accept` call did.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// More tokens are needed; send this one.
    Continue(Vec<u8>),
    /// The context is established with the client `principal`; `token`
    /// (possibly empty) still goes to the client.
    Established { token: Vec<u8>, principal: String },
}

impl Context {
    pub fn new(acceptor: Arc<Acceptor>) -> Context {
        Context {
            acceptor,
            ctx: ptr::null_mut(),
        }
    }

    /// `gss_accept_sec_context` on the client's token.
    pub fn accept(&mut self, token: &[u8]) -> Result<Accepted, String> {
        let api = &self.acceptor.api;
        let mut minor = 0;
        let mut src: GssName = ptr::null_mut();
        let mut out = Buffer {
            length: 0,
            value: ptr::null_mut(),
        };
        let tb = input(token);
        // SAFETY: `ctx` is null or a context of this library; the
        // credential lives as long as `acceptor`; optional outputs are null.
        let major = unsafe {
            (api.accept_sec_context)(
                &mut minor,
                &mut self.ctx,
                self.acceptor.cred,
                &tb,
                ptr::null(),
                &mut src,
                ptr::null_mut(),
                &mut out,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let out_token = api.take(&mut out);
        if is_error(major) {
            if !src.is_null() {
                let mut m = 0;
                // SAFETY: a name the library returned.
                unsafe { (api.release_name)(&mut m, &mut src) };
            }
            return Err(api.status(major, minor));
        }
        if major & 0xffff == GSS_S_CONTINUE_NEEDED {
            return Ok(Accepted::Continue(out_token));
        }
        debug_assert_eq!(major & 0xffff, GSS_S_COMPLETE);
        let mut text = Buffer {
            length: 0,
            value: ptr::null_mut(),
        };
        // SAFETY: `src` is the name the library returned with the context.
        let major = unsafe { (api.display_name)(&mut minor, src, &mut text, ptr::null_mut()) };
        let mut m = 0;
        // SAFETY: released once.
        unsafe { (api.release_name)(&mut m, &mut src) };
        if is_error(major) {
            return Err(api.status(major, minor));
        }
        let principal = String::from_utf8(api.take(&mut text))
            .map_err(|_| "the client's principal is not UTF-8".to_string())?;
        Ok(Accepted::Established {
            token: out_token,
            principal,
        })
    }

    /// `gss_init_sec_context` towards `target` (a principal), with the
    /// server's last token (empty at first). Returns the token to send and
    /// whether the context is established.
    pub fn initiate(&mut self, target: &str, token: &[u8]) -> Result<(Vec<u8>, bool), String> {
        let api = &self.acceptor.api;
        let mut target_name = import_principal(api, target)?;
        let mut minor = 0;
        let mut out = Buffer {
            length: 0,
            value: ptr::null_mut(),
        };
        let tb = input(token);
        // SAFETY: `ctx` is null or a context of this library; the
        // credential lives as long as `acceptor`; the target is a live
        // name; the optional outputs are null.
        let major = unsafe {
            (api.init_sec_context)(
                &mut minor,
                self.acceptor.cred,
                &mut self.ctx,
                target_name,
                ptr::null(),
                GSS_C_MUTUAL_FLAG | GSS_C_INTEG_FLAG,
                0,
                ptr::null(),
                if token.is_empty() { ptr::null() } else { &tb },
                ptr::null_mut(),
                &mut out,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let mut m = 0;
        // SAFETY: imported above, released once.
        unsafe { (api.release_name)(&mut m, &mut target_name) };
        let out_token = api.take(&mut out);
        if is_error(major) {
            return Err(format!("towards {target}: {}", api.status(major, minor)));
        }
        Ok((out_token, major & 0xffff != GSS_S_CONTINUE_NEEDED))
    }

    /// `gss_wrap` without confidentiality (integrity only).
    pub fn wrap(&mut self, msg: &[u8]) -> Result<Vec<u8>, String> {
        let api = &self.acceptor.api;
        let mut minor = 0;
        let mut out = Buffer {
            length: 0,
            value: ptr::null_mut(),
        };
        let b = input(msg);
        // SAFETY: an established context; live buffers.
        let major =
            unsafe { (api.wrap)(&mut minor, self.ctx, 0, 0, &b, ptr::null_mut(), &mut out) };
        let bytes = api.take(&mut out);
        if is_error(major) {
            return Err(api.status(major, minor));
        }
        Ok(bytes)
    }

    /// `gss_unwrap`: the message, checked for integrity.
    pub fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, String> {
        let api = &self.acceptor.api;
        let mut minor = 0;
        let mut out = Buffer {
            length: 0,
            value: ptr::null_mut(),
        };
        let b = input(token);
        // SAFETY: an established context; live buffers.
        let major = unsafe {
            (api.unwrap)(
                &mut minor,
                self.ctx,
                &b,
                &mut out,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let bytes = api.take(&mut out);
        if is_error(major) {
            return Err(api.status(major, minor));
        }
        Ok(bytes)
    }
}
