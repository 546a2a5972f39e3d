/** Entry point Verdaccio loads (`store: { registry-storage: {} }`): the default export is the plugin class. */
import RegistryStoragePlugin from './plugin';

export default RegistryStoragePlugin;
