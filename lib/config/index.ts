/** Configuration: one validated, typed `Config` from defaults, a file, the environment and flags. */
export {
  configSchema,
  fieldSchemas,
  CONFIG_KEYS,
  BOOLEAN_KEYS,
  DEFAULT_LISTENING_ADDRESS,
  usesEmbeddedBroker,
  type Config,
  type ConfigKey,
  type NodeType,
  type ListeningType,
  type CommunicationProtocol,
  type StorageProvider,
  type AuthenticationHandler,
  type LogLevel,
  type LogTraceDestination,
} from './schema.js';
export {
  fromFile,
  fromEnv,
  fromFlags,
  keyNames,
  describeOrigin,
  KEY_NAMES,
  IGNORED_REFERENCE_KEYS,
  type ConfigIssue,
  type FileFormat,
  type FileResult,
  type FlagsResult,
  type KeyNames,
  type Origin,
  type RawConfig,
  type RawValue,
  type SourceKind,
  type SourceResult,
} from './sources.js';
export { flagsHelp, configTableMarkdown, settingsHelp, type SettingHelp } from './help.js';
export { loadConfig, loadConfigReport, ConfigError, type ConfigReport, type LoadConfigOptions } from './load.js';
