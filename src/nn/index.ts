export * from './module';
export * from './layers';
export * from './classifier';
export * from './resnet';
export * from './auxnet';
