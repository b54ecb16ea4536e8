// Runs the CLI from source (no build needed): node --import tsx test/helpers/cli.ts <args>.
import { main } from '../../src/cli/index.js';

process.exitCode = await main(process.argv);
